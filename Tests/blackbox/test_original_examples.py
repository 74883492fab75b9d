"""Black-box replay of the original ThingData server's documented curl examples
(reuse-city/thingdata-server v0.1.4, docs/api/README.md, "Working Example") against live
nodes started by scripts/test. The examples' invalid thing type "appliance" is replaced by
the allowed "device"; everything else is sent as documented, including the old relationship
shape ({thing_id, relationship_type, target_uri, relation_metadata})."""

import os
import uuid

import pytest
import requests

URLS = [u for u in os.environ.get("THINGDATA_BLACKBOX_URLS", "").split(",") if u]
if not URLS:
    pytest.skip("THINGDATA_BLACKBOX_URLS is not set: scripts/test starts the nodes", allow_module_level=True)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=URLS)
def base(request):
    return request.param


def post(base, path, body):
    return requests.post(base + path, json=body, headers=JSON, timeout=10)


def test_working_example_from_the_original_docs(base):
    # 1. Create a coffee machine ("appliance" in the docs is not an allowed type).
    machine = post(base, "/api/v1/things", {
        "type": "device",
        "name": {"default": "Coffee Machine XK-42", "translations": {"es": "Máquina de Café XK-42"}},
        "manufacturer": {"name": "BaristaPlus", "website": "https://baristaplus.example.com", "contact": "support@baristaplus.example.com"},
        "properties": {"dimensions": {"length": 30.0, "width": 20.0, "height": 40.0},
                       "materials": ["stainless steel", "plastic", "glass"],
                       "manufacturing_date": "2024-01-01", "serial_number": "XK42-001"},
    })
    assert machine.status_code == 200, machine.text
    m = machine.json()
    assert uuid.UUID(m["id"])
    assert m["type"] == "device"
    assert m["name"]["translations"]["es"] == "Máquina de Café XK-42"
    assert m["properties"]["dimensions"]["height"] == 40.0
    assert m["uri"] and " " not in m["uri"]
    assert "created_at" in m and "updated_at" in m

    # 2. Its water tank component.
    tank = post(base, "/api/v1/things", {
        "type": "component",
        "name": {"default": "Water Tank XK-42", "translations": {"es": "Tanque de Agua XK-42"}},
        "manufacturer": {"name": "BaristaPlus"},
        "properties": {"dimensions": {"length": 15.0, "width": 10.0, "height": 20.0},
                       "materials": ["plastic", "rubber"], "serial_number": "WT-XK42-001"},
    })
    assert tank.status_code == 200, tank.text
    t = tank.json()
    assert t["manufacturer"]["website"] is None
    assert t["properties"]["manufacturing_date"] is None

    # 3. A repair story.
    story = post(base, "/api/v1/stories", {
        "thing_id": m["id"],
        "type": "repair",
        "procedure": [
            {"order": 1, "description": {"default": "Remove water tank and filter", "translations": {"es": "Retirar el tanque de agua y el filtro"}},
             "warnings": ["Ensure machine is cool and unplugged"], "tools": ["none"], "media": []},
            {"order": 2, "description": {"default": "Clean the water tank with mild soap", "translations": {"es": "Limpiar el tanque con jabón suave"}},
             "warnings": ["Use only mild soap", "Rinse thoroughly"], "tools": ["soft cloth", "mild soap"], "media": []},
        ],
    })
    assert story.status_code == 200, story.text
    s = story.json()
    assert s["thing_id"] == m["id"]
    assert s["version"]["number"] == "1.0.0" and s["version"]["history"] == []
    assert [step["order"] for step in s["procedure"]] == [1, 2]

    # 4. The relationship, in the docs' (old) shape; metadata must persist.
    rel = post(base, "/api/v1/relationships", {
        "thing_id": m["id"], "relationship_type": "has_component", "target_uri": t["id"],
        "relation_metadata": {"position": "top", "removable": True, "capacity": "1.5L"},
    })
    assert rel.status_code == 200, rel.text
    r = rel.json()
    assert (r["source_id"], r["target_id"], r["relationship_type"]) == (m["id"], t["id"], "has_component")
    assert r["metadata"] == {"position": "top", "removable": True, "capacity": "1.5L"}

    # Single GETs embed relationships; the story list for the thing finds the story.
    got = requests.get(f"{base}/api/v1/things/{m['id']}", timeout=10).json()
    assert [x["id"] for x in got["relationships"]] == [r["id"]]
    assert got["relationships"][0]["metadata"]["capacity"] == "1.5L"
    stories = requests.get(f"{base}/api/v1/things/{m['id']}/stories", timeout=10).json()
    assert [x["id"] for x in stories] == [s["id"]]

    # Filters as the original: relationships by source, things by type.
    by_source = requests.get(f"{base}/api/v1/relationships", params={"source_id": m["id"]}, timeout=10).json()
    assert [x["id"] for x in by_source] == [r["id"]]
    components = requests.get(f"{base}/api/v1/things", params={"type": "component", "limit": 1000}, timeout=10).json()
    assert t["id"] in [x["id"] for x in components] and m["id"] not in [x["id"] for x in components]


def test_node_pages_and_health(base):
    root = requests.get(base + "/", timeout=10)
    assert root.status_code == 200 and "ThingData Server" in root.text
    assert requests.get(base + "/favicon.ico", timeout=10).status_code == 200
    h = requests.get(base + "/health", timeout=10).json()
    assert h["status"] == "healthy"
    assert set(h["components"]) == {"database", "api"}
    assert set(h["metrics"]) == {"memory_usage", "cpu_usage", "active_connections", "storage_usage", "federation_peers"}
    assert requests.get(base + "/health/ready", timeout=10).status_code == 200
    assert "thingdata_entities" in requests.get(base + "/metrics", timeout=10).text


def test_unknown_thing_has_no_stories_and_missing_references_are_404(base):
    unknown = str(uuid.uuid4())
    assert requests.get(f"{base}/api/v1/things/{unknown}/stories", timeout=10).json() == []
    assert requests.get(f"{base}/api/v1/things/{unknown}", timeout=10).status_code == 404
    r = post(base, "/api/v1/stories", {"thing_id": unknown, "type": "repair", "procedure": []})
    assert r.status_code == 404 and "error" in r.json() and "detail" in r.json()


def test_bad_input_is_a_clear_4xx_and_stores_nothing(base):
    before = len(requests.get(f"{base}/api/v1/things", params={"limit": 1000}, timeout=10).json())
    wrong_type = requests.post(base + "/api/v1/things", data="{}", headers={"Content-Type": "text/plain"}, timeout=10)
    assert wrong_type.status_code == 400
    bad = post(base, "/api/v1/things", {"type": "appliance", "name": {"default": "X"}, "manufacturer": {"name": "Y"}})
    assert bad.status_code == 400
    assert bad.json()["detail"][0]["loc"] == ["body", "type"]
    malformed = requests.post(base + "/api/v1/things", data=b'{"type": "device",', headers=JSON, timeout=10)
    assert malformed.status_code == 400
    deep = requests.post(base + "/api/v1/things", data="[" * 25 + "]" * 25, headers=JSON, timeout=10)
    assert deep.status_code == 400
    big = requests.post(base + "/api/v1/things", data=b" " * 10_500_000, headers=JSON, timeout=30)
    assert big.status_code == 413
    after = len(requests.get(f"{base}/api/v1/things", params={"limit": 1000}, timeout=10).json())
    assert after == before


def test_delete_needs_confirmation(base):
    t = post(base, "/api/v1/things", {"type": "tool", "name": {"default": "Spudger"}, "manufacturer": {"name": "iFixit"}}).json()
    assert requests.delete(f"{base}/api/v1/things/{t['id']}", timeout=10).status_code == 400
    assert requests.delete(f"{base}/api/v1/things/{t['id']}", headers={"X-Confirm-Delete": "true"}, timeout=10).status_code == 204
    assert requests.get(f"{base}/api/v1/things/{t['id']}", timeout=10).status_code == 404
