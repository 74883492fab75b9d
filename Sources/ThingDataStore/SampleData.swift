public import ThingDataCore

/// Realistic multilingual repair content for trying a node: devices with components, repair
/// stories with steps, guides and relationships, in English, Spanish, German, French,
/// Japanese and Greek. Deterministic: the same `count` gives the same content.
public enum SampleData {
    struct Template {
        var name: [String: String]  // "default" plus translations
        var manufacturer: String
        var website: String
        var category: String
        var ords: Int
        var materials: [String]
        var components: [[String: String]]
        var fault: [String: String]
        var steps: [[String: String]]
        var tools: [String]
        var guideTitle: [String: String]
    }

    public static var templateCount: Int { templates.count }
    static let templates: [Template] = [
        Template(
            name: ["default": "Coffee Machine XK-42", "es": "Máquina de café XK-42", "de": "Kaffeemaschine XK-42", "ja": "コーヒーメーカー XK-42", "el": "Καφετιέρα XK-42"],
            manufacturer: "BaristaPlus", website: "https://baristaplus.example.com", category: "Coffee maker", ords: 36,
            materials: ["stainless steel", "plastic", "glass"],
            components: [["default": "Water Tank", "es": "Tanque de agua", "ja": "給水タンク"], ["default": "Heating Element", "de": "Heizelement", "ja": "ヒーター"]],
            fault: ["default": "Descaling a blocked water circuit", "es": "Descalcificar el circuito de agua", "ja": "水回路の除石灰"],
            steps: [
                ["default": "Unplug the machine and let it cool down", "es": "Desenchufa la máquina y deja que se enfríe", "de": "Gerät ausstecken und abkühlen lassen", "ja": "電源を抜いて冷ましてください"],
                ["default": "Remove the water tank and rinse it with vinegar solution", "es": "Retira el tanque y enjuágalo con vinagre", "ja": "給水タンクを外して酢水ですすぐ"],
                ["default": "Run two cycles of clean water through the circuit", "es": "Pasa dos ciclos de agua limpia", "el": "Περάστε δύο κύκλους καθαρό νερό"],
            ],
            tools: ["soft cloth", "white vinegar"], guideTitle: ["default": "Descaling guide", "es": "Guía de descalcificación", "ja": "除石灰ガイド"]),
        Template(
            name: ["default": "Toaster T200", "fr": "Grille-pain T200", "de": "Toaster T200", "ja": "トースター T200", "el": "Φρυγανιέρα T200"],
            manufacturer: "CrispCo", website: "https://crispco.example.org", category: "Toaster", ords: 31,
            materials: ["steel", "mica", "bakelite"],
            components: [["default": "Heating Wire", "fr": "Fil chauffant", "ja": "電熱線"], ["default": "Lever Switch", "fr": "Interrupteur à levier"]],
            fault: ["default": "Lever does not stay down", "fr": "Le levier ne reste pas baissé", "ja": "レバーが下がったままにならない"],
            steps: [
                ["default": "Unplug the toaster and empty the crumb tray", "fr": "Débranchez et videz le tiroir à miettes", "ja": "電源を抜き、パンくずトレイを空にする"],
                ["default": "Open the bottom cover with a Torx screwdriver", "fr": "Ouvrez le capot avec un tournevis Torx"],
                ["default": "Clean the electromagnet contacts and test the lever", "fr": "Nettoyez l'électroaimant et testez le levier", "el": "Καθαρίστε τις επαφές του ηλεκτρομαγνήτη"],
            ],
            tools: ["Torx T10 screwdriver", "contact cleaner"], guideTitle: ["default": "Toaster lever repair", "fr": "Réparer le levier d'un grille-pain"]),
        Template(
            name: ["default": "Cyclone Vacuum V8", "de": "Zyklonstaubsauger V8", "es": "Aspiradora ciclónica V8", "ja": "サイクロン掃除機 V8", "el": "Ηλεκτρική σκούπα V8"],
            manufacturer: "Sweepwell", website: "https://sweepwell.example.net", category: "Vacuum", ords: 34,
            materials: ["ABS plastic", "copper", "lithium-ion cells"],
            components: [["default": "Battery Pack", "de": "Akkupack", "ja": "バッテリーパック"], ["default": "Brush Roll", "de": "Bürstenwalze"]],
            fault: ["default": "Pulsing suction and short run time", "de": "Pulsierende Saugleistung", "ja": "吸引が途切れる"],
            steps: [
                ["default": "Check the filter and wash it in cold water", "de": "Filter prüfen und kalt auswaschen", "ja": "フィルターを確認し冷水で洗う"],
                ["default": "Remove the two screws holding the battery pack", "de": "Die zwei Schrauben des Akkus lösen"],
                ["default": "Fit a new battery pack and charge it fully", "de": "Neuen Akku einsetzen und voll laden", "el": "Τοποθετήστε νέα μπαταρία"],
            ],
            tools: ["Torx T15 screwdriver", "replacement battery"], guideTitle: ["default": "Battery replacement", "de": "Akkutausch", "ja": "バッテリー交換"]),
        Template(
            name: ["default": "Desk Lamp Lumo", "es": "Lámpara de escritorio Lumo", "fr": "Lampe de bureau Lumo", "ja": "デスクランプ ルモ", "el": "Φωτιστικό γραφείου Lumo"],
            manufacturer: "Lumo Lighting", website: "https://lumo.example.com", category: "Lamp", ords: 15,
            materials: ["aluminium", "PVC"],
            components: [["default": "Power Cord", "es": "Cable de alimentación", "ja": "電源コード"], ["default": "Rocker Switch", "fr": "Interrupteur à bascule"]],
            fault: ["default": "Lamp flickers when moved", "es": "La lámpara parpadea al moverla", "ja": "動かすとちらつく"],
            steps: [
                ["default": "Unplug the lamp and open the base", "es": "Desenchufa la lámpara y abre la base", "ja": "プラグを抜いて台座を開ける"],
                ["default": "Check the cord for breaks near the strain relief", "es": "Revisa el cable cerca del prensaestopas", "el": "Ελέγξτε το καλώδιο για σπασίματα"],
                ["default": "Replace the cord and secure the strain relief", "es": "Cambia el cable y asegura el prensaestopas"],
            ],
            tools: ["multimeter", "wire stripper"], guideTitle: ["default": "Replacing a lamp cord", "es": "Cambiar el cable de una lámpara"]),
        Template(
            name: ["default": "Electric Kettle K3", "de": "Wasserkocher K3", "fr": "Bouilloire électrique K3", "ja": "電気ケトル K3", "el": "Βραστήρας K3"],
            manufacturer: "BoilRight", website: "https://boilright.example.com", category: "Kettle", ords: 14,
            materials: ["stainless steel", "polypropylene"],
            components: [["default": "Thermostat", "de": "Thermostat", "ja": "サーモスタット"], ["default": "Base Connector", "fr": "Connecteur de socle"]],
            fault: ["default": "Kettle does not switch off when boiling", "de": "Schaltet beim Kochen nicht ab", "ja": "沸騰しても電源が切れない"],
            steps: [
                ["default": "Unplug and empty the kettle", "de": "Ausstecken und leeren", "ja": "プラグを抜いて空にする"],
                ["default": "Lift the handle cover to reach the thermostat", "de": "Griffabdeckung abnehmen"],
                ["default": "Replace the bimetal thermostat", "de": "Bimetall-Thermostat ersetzen", "el": "Αντικαταστήστε τον θερμοστάτη"],
            ],
            tools: ["spudger", "Phillips screwdriver"], guideTitle: ["default": "Kettle thermostat replacement", "de": "Thermostat eines Wasserkochers tauschen"]),
        Template(
            name: ["default": "Portable Radio Tivoli", "fr": "Radio portable Tivoli", "es": "Radio portátil Tivoli", "ja": "ポータブルラジオ", "el": "Φορητό ραδιόφωνο"],
            manufacturer: "Soundhouse", website: "https://soundhouse.example.org", category: "Portable radio", ords: 23,
            materials: ["wood", "plastic", "copper"],
            components: [["default": "Volume Potentiometer", "fr": "Potentiomètre de volume", "ja": "ボリューム"], ["default": "Telescopic Antenna", "es": "Antena telescópica"]],
            fault: ["default": "Crackling sound when turning the volume", "fr": "Grésillement au réglage du volume", "ja": "音量を回すとガリガリ音がする"],
            steps: [
                ["default": "Remove the batteries and the back panel", "fr": "Retirez les piles et le panneau arrière", "ja": "電池と裏ぶたを外す"],
                ["default": "Spray contact cleaner into the potentiometer and rotate it", "fr": "Vaporisez du nettoyant contact dans le potentiomètre"],
                ["default": "Reassemble and test on a strong station", "fr": "Remontez et testez", "el": "Συναρμολογήστε και δοκιμάστε"],
            ],
            tools: ["contact cleaner", "Phillips screwdriver"], guideTitle: ["default": "Cleaning scratchy potentiometers", "fr": "Nettoyer un potentiomètre qui grésille"]),
    ]

    static func ml(_ m: [String: String]) -> JSONValue {
        var translations = JSONObject()
        for (k, v) in m.sorted(by: { $0.key < $1.key }) where k != "default" { translations[k] = .string(v) }
        return ["default": .string(m["default"] ?? ""), "translations": .object(translations)]
    }

    /// The default name of device group `i`, which also identifies the group on a re-run.
    public static func deviceKey(_ i: Int) -> (type: String, manufacturer: String, name: String) {
        let t = templates[i % templates.count]
        return ("device", t.manufacturer, i < templates.count ? t.name["default"]! : "\(t.name["default"]!) Mk \(i / templates.count + 1)")
    }

    /// The operations of device group `i`: a device, its components, a repair story, a guide,
    /// and relationships between them, linked by batch references.
    public static func group(_ i: Int) -> [Operation] {
        let t = templates[i % templates.count]
        let suffix = i < templates.count ? "" : " Mk \(i / templates.count + 1)"
        var name = t.name
        for (k, v) in name { name[k] = v + suffix }
        let year = 2010 + (i * 7) % 15
        var ops: [Operation] = []
        ops.append(Operation(.create, .thing, ref: "device", body: [
            "type": "device", "name": ml(name),
            "manufacturer": ["name": .string(t.manufacturer), "website": .string(t.website), "contact": .string("repair@\(t.manufacturer.lowercased().filter { $0.isLetter }).example.com")],
            "properties": [
                "dimensions": ["length": .double(Double(20 + i % 30)), "width": .double(15.5), "height": .double(Double(10 + i % 20))],
                "materials": .array(t.materials.map(JSONValue.string)), "manufacturing_date": .string("\(year)-0\(1 + i % 9)-15"),
                "serial_number": .string("\(t.manufacturer.prefix(3).uppercased())-\(100_000 + i)"),
            ],
            "tags": ["sample", .string(t.category.lowercased())],
            "ords_category": ["id": .int(Int64(t.ords)), "label": .string(t.category)],
        ]))
        for (c, component) in t.components.enumerated() {
            var cname = component
            for (k, v) in cname { cname[k] = v + suffix }
            ops.append(Operation(.create, .thing, ref: "component\(c)", body: [
                "type": "component", "name": ml(cname), "manufacturer": ["name": .string(t.manufacturer)],
                "properties": ["materials": .array(t.materials.prefix(1).map(JSONValue.string))],
            ]))
            ops.append(Operation(.create, .relationship, body: [
                "source_type": "thing", "source_id": "$ref:device", "target_type": "thing", "target_id": .string("$ref:component\(c)"),
                "relationship_type": "has_component", "direction": "unidirectional", "metadata": ["removable": .bool(c == 0), "position": .string(c == 0 ? "back" : "inside")],
            ]))
        }
        let steps: [JSONValue] = t.steps.enumerated().map { n, step in
            [
                "order": .int(Int64(n + 1)), "description": ml(step),
                "warnings": n == 0 ? ["Make sure the appliance is unplugged"] : [],
                "tools": n == 0 ? [] : .array(t.tools.map(JSONValue.string)), "media": [],
            ]
        }
        ops.append(Operation(.create, .story, ref: "story", body: [
            "thing_id": "$ref:device", "thing_category": ["category": .string(t.category), "subcategory": .string(t.fault["default"]!), "attributes": ["ords_category": .int(Int64(t.ords))]],
            "type": "repair", "procedure": .array(steps),
        ]))
        ops.append(Operation(.create, .guide, ref: "guide", body: [
            "thing_id": "$ref:device", "thing_category": ["category": .string(t.category)],
            "type": ["primary": "tutorial", "secondary": "repair"],
            "content": [
                "title": ml(t.guideTitle), "summary": ml(t.fault),
                "requirements": ["skills": ["basic electrics"], "tools": .array(t.tools.map(JSONValue.string)), "materials": [], "certifications": []],
                "warnings": [["severity": "WARNING", "message": ml(["default": "Disconnect mains power before opening", "es": "Desconecta la corriente antes de abrir", "ja": "開ける前に電源を切ってください"])]],
                "procedure": .array(t.steps.enumerated().map { n, s in ["step": .int(Int64(n + 1)), "text": .string(s["default"]!)] }),
            ],
        ]))
        ops.append(Operation(.create, .relationship, body: [
            "source_type": "story", "source_id": "$ref:story", "target_type": "guide", "target_id": "$ref:guide",
            "relationship_type": "implements", "direction": "unidirectional", "metadata": ["success_rate": .double(0.8)],
        ]))
        return ops
    }

    /// Loads `count` device groups through the catalog, skipping groups already present, and
    /// reports progress. Returns how many groups were added.
    public static func load(count: Int, into catalog: Catalog, progress: @Sendable (Int, Int, Bool) -> Void = { _, _, _ in }) async throws -> Int {
        var added = 0
        for i in 0..<count {
            let key = deviceKey(i)
            let dup = EntityIndex.duplicateKey(type: key.type, manufacturer: key.manufacturer, name: key.name)
            let exists = try await !catalog.store.things(withDuplicateKey: dup, limit: 1).isEmpty
            if !exists {
                try await catalog.apply(group(i), path: { [.key("sample"), .index(i), .index($0)] })
                added += 1
            }
            progress(i + 1, count, !exists)
        }
        return added
    }
}
