import Foundation
import Testing
import ZooData

@Suite("ImageFolder")
struct ImageFolderTests {
    @Test("Classes and files in byte-wise sorted order; empty classes kept and reported; other entries reported")
    func listing() throws {
        try withTemporaryFolder { root in
            // Class folders, not in order; "B" sorts before "a", "ä" (UTF-8 C3 A4) after "z".
            for name in ["b", "a", "B", "ä", "empty", "z"] { try makeFolder(root.appendingPathComponent(name)) }
            try makeFolder(root.appendingPathComponent(".hidden"))
            try write([1, 2, 3], to: root.appendingPathComponent("README.txt"))
            let images: [(String, String)] = [
                ("a", "2.png"), ("a", "10.png"), ("a", "1.PNG"), ("b", "x.jpg"), ("B", "y.jpeg"), ("ä", "ü.png"), ("z", "only.png"),
            ]
            var expected: [String: Image] = [:]
            for (index, (folder, file)) in images.enumerated() {
                let image = patternImage(width: 4 + index, height: 3, seed: index)
                let url = root.appendingPathComponent(folder).appendingPathComponent(file)
                // Content decides the codec, not the extension: every file here is a PNG.
                try ImageCodec.writePNG(image, to: url)
                expected[url.path] = image
            }
            try write([0], to: root.appendingPathComponent("a/notes.txt"))
            try write([0], to: root.appendingPathComponent("a/.DS_Store"))
            try makeFolder(root.appendingPathComponent("b/nested"))

            let dataset = try ImageFolder(root: root)
            #expect(dataset.classNames == ["B", "a", "b", "empty", "z", "ä"])
            #expect(dataset.count == 7)
            #expect(dataset.classCounts == [1, 3, 1, 0, 1, 1])
            // Within a class, byte-wise: "1.PNG" < "10.png" < "2.png".
            let ids = (0..<dataset.count).map { dataset.sampleID(at: $0) }
            let base = root.path
            #expect(ids == ["\(base)/B/y.jpeg", "\(base)/a/1.PNG", "\(base)/a/10.png", "\(base)/a/2.png", "\(base)/b/x.jpg", "\(base)/z/only.png", "\(base)/ä/ü.png"])
            #expect((0..<dataset.count).map { dataset.label(at: $0) } == [0, 1, 1, 1, 2, 4, 5])
            #expect(dataset.warnings.contains("\(base)/empty: empty class folder"))
            #expect(dataset.warnings.contains("\(base)/a: 1 file ignored (not .jpeg, .jpg, .png)"))
            #expect(dataset.warnings.contains { $0.hasPrefix("\(base)/b: 1 sub-folder ignored") })
            #expect(dataset.warnings.count == 3)
            for index in 0..<dataset.count {
                #expect(try dataset.image(at: index) == expected[ids[index]])
                #expect(dataset.fileURL(at: index).path == ids[index])
            }

            // Extensions: case-insensitive, with or without the dot.
            let pngOnly = try ImageFolder(root: root, extensions: [".PNG"])
            #expect(pngOnly.count == 5)
            #expect(pngOnly.extensions == ["png"])
            #expect(pngOnly.warnings.contains("\(base)/b: empty class folder"))
        }
    }

    @Test("A missing root, a file, a root without class folders or without images throw naming the root")
    func badRoots() throws {
        try withTemporaryFolder { folder in
            let missing = folder.appendingPathComponent("missing")
            expectDataError(source: missing.path, "cannot read the folder") { _ = try ImageFolder(root: missing) }
            let file = folder.appendingPathComponent("file")
            try write([1], to: file)
            expectDataError(source: file.path, "cannot read the folder") { _ = try ImageFolder(root: file) }
            let flat = folder.appendingPathComponent("flat")
            try makeFolder(flat)
            try ImageCodec.writePNG(patternImage(width: 2, height: 2), to: flat.appendingPathComponent("a.png"))
            expectDataError(source: flat.path, "no class folders") { _ = try ImageFolder(root: flat) }
            let empty = folder.appendingPathComponent("empty")
            try makeFolder(empty.appendingPathComponent("cat"))
            try makeFolder(empty.appendingPathComponent("dog"))
            try write([1], to: empty.appendingPathComponent("dog/readme.md"))
            expectDataError(source: empty.path, "none of the 2 class folders holds an image") { _ = try ImageFolder(root: empty) }
        }
    }

    @Test("Damaged images: each an error naming its file, the others still readable")
    func damagedFiles() throws {
        try withTemporaryFolder { root in
            let folder = root.appendingPathComponent("things")
            try makeFolder(folder)
            let good = patternImage(width: 6, height: 5)
            let png = try ImageCodec.encodePNG(good)
            let files: [(String, [UInt8])] = [
                ("0-good.png", png),
                ("1-truncated.jpg", Array(JPEGFixtures.rgb.prefix(JPEGFixtures.rgb.count * 2 / 3))),
                ("2-truncated.png", Array(png.prefix(png.count - 30))),
                ("3-garbage.jpg", [0xFF, 0xD8, 0xFF, 0xE0] + (0..<500).map { UInt8(($0 * 89 + 7) & 0xFF) }),
                ("4-empty.jpg", []),
                ("5-text.png", Array("not an image\n".utf8)),
                ("6-good.jpg", JPEGFixtures.gray),
            ]
            for (name, bytes) in files { try write(bytes, to: folder.appendingPathComponent(name)) }
            let dataset = try ImageFolder(root: root)
            #expect(dataset.count == files.count)
            #expect(try dataset.image(at: 0) == good)
            #expect(try dataset.image(at: 6).width == 16)
            let messages = ["corrupt JPEG", "corrupt PNG", "corrupt JPEG", "empty file", "not a JPEG or PNG image"]
            for index in 1...5 {
                expectDataError(source: folder.appendingPathComponent(files[index].0).path, messages[index - 1]) {
                    _ = try dataset.image(at: index)
                }
            }
            // A file removed after listing.
            try FileManager.default.removeItem(at: folder.appendingPathComponent("0-good.png"))
            expectDataError(source: folder.appendingPathComponent("0-good.png").path, "cannot open") { _ = try dataset.image(at: 0) }
        }
    }
}
