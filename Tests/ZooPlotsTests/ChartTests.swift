import Foundation
import Testing
import ZooPlots

@Suite("Charts")
struct ChartTests {
    let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-plots-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A file that starts with the PNG signature and is not tiny.
    func isPNG(_ url: URL) throws -> Bool {
        let data = try Data(contentsOf: url)
        return data.count > 2000 && Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    }

    @Test("line charts, heatmaps and bar charts are written as PNG")
    func charts() throws {
        let curves = folder.appendingPathComponent("loss.png")
        try LineChart(title: "Loss", xLabel: "epoch", yLabel: "cross-entropy", series: [
            .init(name: "training", points: (1...20).map { (Double($0), 2.0 / Double($0)) }),
            .init(name: "validation", points: (1...20).map { (Double($0), 2.2 / Double($0) + 0.1) }, dashed: true),
        ]).write(to: curves)
        #expect(try isPNG(curves))
        let confusion = folder.appendingPathComponent("confusion.png")
        let labels = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck", "crocodile", "dinosaur",
                      "lizard", "snake", "turtle"]
        let values = labels.indices.map { row in labels.indices.map { column in row == column ? 80 : (row + column) % 5 } }
        try Heatmap(title: "Confusion matrix", rowLabel: "true class", columnLabel: "predicted class", labels: labels, values: values)
            .write(to: confusion)
        #expect(try isPNG(confusion))
        let bars = folder.appendingPathComponent("per-class.png")
        try BarChart(title: "Accuracy per class", valueLabel: "accuracy", labels: labels,
                     values: labels.indices.map { 0.5 + 0.03 * Double($0) }).write(to: bars)
        #expect(try isPNG(bars))
        #expect(throws: PlotError.self) {
            try Heatmap(title: "", rowLabel: "", columnLabel: "", labels: ["a", "b"], values: [[1]]).write(to: confusion)
        }
        print("charts in \(folder.path)")
    }

    @Test("scatter charts on linear, logarithmic and category axes are written as PNG, points that cannot be placed left out")
    func scatter() throws {
        let axes: [(String, ScatterChart.XAxis, [(x: Double, y: Double)])] = [
            ("linear", .linear, [(0.1, 0.5), (0.3, 0.7), (.nan, 0.9), (0.2, .nan)]),
            ("log", .logarithmic, [(1e-4, 0.4), (3e-3, 0.8), (0.08, 0.6), (0, 0.9)]),
            ("categories", .categories(["sgd", "adam", "adamax"]), [(0, 0.6), (1, 0.7), (1, 0.72), (2, 0.5)]),
            ("one point", .logarithmic, [(0.01, 0.5)]),
        ]
        for (name, axis, points) in axes {
            let file = folder.appendingPathComponent("scatter-\(name.replacingOccurrences(of: " ", with: "-")).png")
            try ScatterChart(title: "val_accuracy against \(name)", xLabel: name, yLabel: "val_accuracy", points: points, xAxis: axis, marked: 1)
                .write(to: file)
            #expect(try isPNG(file), "\(name)")
        }
    }
}
