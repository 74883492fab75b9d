"""Seeds N things through a node's batch API and writes their ids, one a line."""
import json, random, sys, urllib.request

base, count, ids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
devices = [("Coffee Machine", "Máquina de café", "Kaffeemaschine", "コーヒーメーカー"), ("Kettle", "Hervidor", "Wasserkocher", "電気ケトル"),
           ("Toaster", "Tostadora", "Toaster", "トースター"), ("Vacuum Cleaner", "Aspiradora", "Staubsauger", "掃除機"),
           ("Desk Lamp", "Lámpara", "Schreibtischlampe", "デスクランプ"), ("Radio", "Radio", "Radio", "ラジオ"),
           ("Hair Dryer", "Secador", "Haartrockner", "ヘアドライヤー"), ("Sewing Machine", "Máquina de coser", "Nähmaschine", "ミシン"),
           ("Laptop", "Portátil", "Laptop", "ノートパソコン"), ("Drill", "Taladro", "Bohrmaschine", "ドリル")]
makers = ["BaristaPlus", "BoilRight", "CrispCo", "Sweepwell", "Lumo", "Soundhouse", "Stitchly", "Voltix", "Tornado", "Hearth"]
with open(ids_file, "w") as out:
    done = 0
    while done < count:
        n = min(1000, count - done)
        ops = []
        for i in range(done, done + n):
            en, es, de, ja = rng.choice(devices)
            ops.append({"op": "create", "kind": "thing", "body": {
                "type": rng.choice(["device", "component", "tool"]),
                "name": {"default": f"{en} {i}", "translations": {"es": f"{es} {i}", "de": f"{de} {i}", "ja": f"{ja} {i}"}},
                "manufacturer": {"name": rng.choice(makers)},
                "properties": {"materials": ["plastic", "steel"], "serial_number": f"SN-{i}"}}})
        req = urllib.request.Request(base + "/api/v1/batch", data=json.dumps({"operations": ops}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            for res in json.load(r)["results"]:
                out.write(res["id"] + "\n")
        done += n
        print(f"\rseeded {done}/{count}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
