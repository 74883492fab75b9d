"""Seeds N things through a node's batch API (1000 per request) and writes their ids, one a
line. Names follow a repair catalogue: ~60 kinds of device, ~40 makers, model codes, and
translations in Spanish, German and Japanese; so a common word matches a few percent of all
things, as in real data, and a model code matches one or two."""
import json, random, sys, urllib.request

base, count, ids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
devices = [
    ("Coffee Machine", "Cafetera", "Kaffeemaschine", "コーヒーメーカー"), ("Kettle", "Hervidor", "Wasserkocher", "電気ケトル"),
    ("Toaster", "Tostadora", "Toaster", "トースター"), ("Vacuum Cleaner", "Aspiradora", "Staubsauger", "掃除機"),
    ("Desk Lamp", "Lámpara", "Schreibtischlampe", "デスクランプ"), ("Radio", "Radio", "Radio", "ラジオ"),
    ("Hair Dryer", "Secador", "Haartrockner", "ヘアドライヤー"), ("Sewing Machine", "Máquina de coser", "Nähmaschine", "ミシン"),
    ("Laptop", "Portátil", "Laptop", "ノートパソコン"), ("Drill", "Taladro", "Bohrmaschine", "ドリル"),
    ("Blender", "Licuadora", "Mixer", "ミキサー"), ("Microwave", "Microondas", "Mikrowelle", "電子レンジ"),
    ("Iron", "Plancha", "Bügeleisen", "アイロン"), ("Fan", "Ventilador", "Ventilator", "扇風機"),
    ("Headphones", "Auriculares", "Kopfhörer", "ヘッドホン"), ("Printer", "Impresora", "Drucker", "プリンター"),
    ("Television", "Televisor", "Fernseher", "テレビ"), ("Game Console", "Consola", "Spielkonsole", "ゲーム機"),
    ("Mobile Phone", "Teléfono móvil", "Handy", "携帯電話"), ("Tablet", "Tableta", "Tablet", "タブレット"),
    ("Food Processor", "Procesador", "Küchenmaschine", "フードプロセッサー"), ("Rice Cooker", "Arrocera", "Reiskocher", "炊飯器"),
    ("Electric Shaver", "Afeitadora", "Rasierer", "シェーバー"), ("Power Drill", "Atornillador", "Akkuschrauber", "電動ドライバー"),
    ("Bicycle Light", "Luz de bicicleta", "Fahrradlicht", "自転車ライト"), ("Speaker", "Altavoz", "Lautsprecher", "スピーカー"),
    ("Camera", "Cámara", "Kamera", "カメラ"), ("Projector", "Proyector", "Beamer", "プロジェクター"),
    ("Heater", "Calefactor", "Heizlüfter", "ヒーター"), ("Dehumidifier", "Deshumidificador", "Luftentfeuchter", "除湿機"),
    ("Washing Machine", "Lavadora", "Waschmaschine", "洗濯機"), ("Dishwasher", "Lavavajillas", "Geschirrspüler", "食器洗い機"),
    ("Fridge", "Nevera", "Kühlschrank", "冷蔵庫"), ("Oven", "Horno", "Backofen", "オーブン"),
    ("Juicer", "Exprimidor", "Entsafter", "ジューサー"), ("Waffle Iron", "Gofrera", "Waffeleisen", "ワッフルメーカー"),
    ("Hand Mixer", "Batidora", "Handmixer", "ハンドミキサー"), ("Clock Radio", "Radio despertador", "Radiowecker", "ラジオ時計"),
    ("Turntable", "Tocadiscos", "Plattenspieler", "レコードプレーヤー"), ("Amplifier", "Amplificador", "Verstärker", "アンプ"),
    ("Monitor", "Monitor", "Bildschirm", "モニター"), ("Keyboard", "Teclado", "Tastatur", "キーボード"),
    ("Router", "Router", "Router", "ルーター"), ("Charger", "Cargador", "Ladegerät", "充電器"),
    ("Lawn Mower", "Cortacésped", "Rasenmäher", "芝刈り機"), ("Hedge Trimmer", "Cortasetos", "Heckenschere", "ヘッジトリマー"),
    ("Soldering Iron", "Soldador", "Lötkolben", "はんだごて"), ("Glue Gun", "Pistola de pegamento", "Heißklebepistole", "グルーガン"),
    ("Electric Toothbrush", "Cepillo eléctrico", "Elektrische Zahnbürste", "電動歯ブラシ"), ("Scale", "Báscula", "Waage", "体重計"),
    ("Air Purifier", "Purificador", "Luftreiniger", "空気清浄機"), ("Humidifier", "Humidificador", "Luftbefeuchter", "加湿器"),
    ("Slow Cooker", "Olla lenta", "Schongarer", "スロークッカー"), ("Grill", "Parrilla", "Grill", "グリル"),
    ("Sandwich Maker", "Sandwichera", "Sandwichmaker", "ホットサンドメーカー"), ("Popcorn Machine", "Palomitera", "Popcornmaschine", "ポップコーンメーカー"),
    ("E-Reader", "Lector electrónico", "E-Reader", "電子書籍リーダー"), ("Smartwatch", "Reloj inteligente", "Smartwatch", "スマートウォッチ"),
    ("Electric Scooter", "Patinete eléctrico", "E-Scooter", "電動キックボード"), ("Sewing Light", "Luz de costura", "Nählicht", "ミシンライト"),
]
makers = ["BaristaPlus", "BoilRight", "CrispCo", "Sweepwell", "Lumo", "Soundhouse", "Stitchly", "Voltix", "Tornado", "Hearth",
          "Aurora", "Bellmont", "Cobalt", "Dynamo", "Everbright", "Fjord", "Granite", "Helix", "Ionis", "Juniper",
          "Kestrel", "Lindqvist", "Meridian", "Nordlicht", "Orion", "Pellucid", "Quasar", "Rivet", "Solace", "Tanaka",
          "Umbra", "Vesta", "Wexford", "Xenon", "Yamabiko", "Zephyr", "Alder", "Birch", "Cedar", "Dune"]
with open(ids_file, "w") as out:
    done = 0
    while done < count:
        n = min(1000, count - done)
        ops = []
        for i in range(done, done + n):
            en, es, de, ja = rng.choice(devices)
            maker = rng.choice(makers)
            model = f"{maker[:2].upper()}-{rng.randint(100, 999)}{rng.choice('ABCDEFGHJK')}"
            ops.append({"op": "create", "kind": "thing", "body": {
                "type": rng.choice(["device", "device", "component", "tool"]),
                "name": {"default": f"{en} {model}", "translations": {"es": f"{es} {model}", "de": f"{de} {model}", "ja": f"{ja} {model}"}},
                "manufacturer": {"name": maker},
                "properties": {"materials": rng.sample(["plastic", "steel", "aluminium", "glass", "copper", "rubber"], 2), "serial_number": f"SN-{i}"}}})
        req = urllib.request.Request(base + "/api/v1/batch", data=json.dumps({"operations": ops}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            for res in json.load(r)["results"]:
                out.write(res["id"] + "\n")
        done += n
        print(f"\rseeded {done}/{count}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
