import Foundation

/// A line chart of one or more series over a shared x axis (training curves).
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var dashed: Bool

        public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
            self.name = name
            self.points = points
            self.dashed = dashed
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Fixed y range (accuracy in [0, 1]); by default the data's range with a margin.
    public var yRange: ClosedRange<Double>?

    public init(title: String, xLabel: String, yLabel: String, series: [Series], yRange: ClosedRange<Double>? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.yRange = yRange
    }

    /// Draws the chart into a PNG file.
    public func write(to url: URL, width: Int = 800, height: Int = 500) throws {
        let canvas = try Canvas(width: width, height: height)
        let frame = (left: 80.0, right: canvas.width - 30, top: 50.0, bottom: canvas.height - 70)
        canvas.text(title, x: canvas.width / 2, y: 18, size: 16, anchor: (0.5, 0), bold: true)
        let all = series.flatMap(\.points)
        let xs = all.map(\.x), ys = all.map(\.y).filter(\.isFinite)
        let xRange = (xs.min() ?? 0)...(max(xs.max() ?? 1, (xs.min() ?? 0) + 1))
        var yBounds = yRange ?? ((ys.min() ?? 0)...(max(ys.max() ?? 1, (ys.min() ?? 0) + 1e-6)))
        if yRange == nil {
            let margin = (yBounds.upperBound - yBounds.lowerBound) * 0.08
            yBounds = (yBounds.lowerBound - margin)...(yBounds.upperBound + margin)
        }
        let axes = Axes(frame: frame, x: xRange, y: yBounds)
        axes.draw(on: canvas, xLabel: xLabel, yLabel: yLabel, integerX: true)
        for (index, series) in series.enumerated() {
            let color = Color.series[index % Color.series.count]
            let points = series.points.filter { $0.y.isFinite }.map { axes.position($0.x, $0.y) }
            canvas.line(points, color: color, width: 2.2, dashed: series.dashed)
            if points.count < 40 { points.forEach { canvas.circle($0.0, $0.1, radius: 3, color: color) } }
        }
        // Legend, top right inside the frame.
        let legendWidth = (series.map { canvas.textWidth($0.name) }.max() ?? 0) + 46
        var y = frame.top + 14
        canvas.fill(Color(1, 1, 1), x: frame.right - legendWidth - 10, y: frame.top + 4, width: legendWidth, height: Double(series.count) * 20 + 8)
        canvas.strokeRectangle(Color(0.8, 0.8, 0.8), x: frame.right - legendWidth - 10, y: frame.top + 4, width: legendWidth,
                               height: Double(series.count) * 20 + 8)
        for (index, series) in series.enumerated() {
            let x = frame.right - legendWidth
            canvas.line([(x, y), (x + 26, y)], color: Color.series[index % Color.series.count], width: 2.5, dashed: series.dashed)
            canvas.text(series.name, x: x + 32, y: y, size: 12, anchor: (0, 0.5))
            y += 20
        }
        try canvas.writePNG(to: url)
    }
}

/// A matrix of counts as coloured cells with labels (a confusion matrix).
public struct Heatmap: Sendable {
    public var title: String
    public var rowLabel: String
    public var columnLabel: String
    public var labels: [String]
    /// `values[row][column]`.
    public var values: [[Int]]

    public init(title: String, rowLabel: String, columnLabel: String, labels: [String], values: [[Int]]) {
        self.title = title
        self.rowLabel = rowLabel
        self.columnLabel = columnLabel
        self.labels = labels
        self.values = values
    }

    /// Draws the heatmap; cells are shaded by the share of their row, and counts are written
    /// in the cells when there is room.
    public func write(to url: URL) throws {
        let n = labels.count
        guard n > 0, values.count == n, values.allSatisfy({ $0.count == n }) else {
            throw PlotError("\(url.path): a heatmap needs \(n)x\(n) values")
        }
        let cell = max(14.0, min(48.0, 640.0 / Double(n)))
        let probe = try Canvas(width: 10, height: 10)
        let labelWidth = (labels.map { probe.textWidth($0, size: 12) }.max() ?? 0) + 14
        let left = labelWidth + 40, top = 60.0
        let width = Int(left + cell * Double(n) + 90), height = Int(top + cell * Double(n) + labelWidth + 50)
        let canvas = try Canvas(width: width, height: height)
        canvas.text(title, x: Double(width) / 2, y: 16, size: 16, anchor: (0.5, 0), bold: true)
        for row in 0..<n {
            let total = max(values[row].reduce(0, +), 1)
            for column in 0..<n {
                let share = Double(values[row][column]) / Double(total)
                let x = left + Double(column) * cell, y = top + Double(row) * cell
                canvas.fill(Color.ramp(share), x: x, y: y, width: cell, height: cell)
                if cell >= 24 {
                    canvas.text("\(values[row][column])", x: x + cell / 2, y: y + cell / 2, size: min(12, cell / 2.6),
                                color: share > 0.55 ? Color(1, 1, 1) : Color(0.1, 0.1, 0.1), anchor: (0.5, 0.5))
                }
            }
            canvas.text(labels[row], x: left - 6, y: top + (Double(row) + 0.5) * cell, size: 12, anchor: (1, 0.5))
        }
        canvas.strokeRectangle(Color(0.5, 0.5, 0.5), x: left, y: top, width: cell * Double(n), height: cell * Double(n))
        for column in 0..<n {
            canvas.text(labels[column], x: left + (Double(column) + 0.5) * cell, y: top + cell * Double(n) + 6, size: 12,
                        anchor: (1, 0.5), rotation: -.pi / 2)
        }
        canvas.text(columnLabel, x: left + cell * Double(n) / 2, y: Double(height) - 14, size: 13, anchor: (0.5, 1))
        canvas.text(rowLabel, x: 16, y: top + cell * Double(n) / 2, size: 13, anchor: (0.5, 0.5), rotation: -.pi / 2)
        // Colour scale.
        let scaleX = left + cell * Double(n) + 24
        for step in 0..<100 {
            canvas.fill(Color.ramp(1 - Double(step) / 99), x: scaleX, y: top + Double(step) * cell * Double(n) / 100, width: 14,
                        height: cell * Double(n) / 100 + 1)
        }
        canvas.text("100%", x: scaleX + 18, y: top, size: 11, anchor: (0, 0))
        canvas.text("0%", x: scaleX + 18, y: top + cell * Double(n), size: 11, anchor: (0, 1))
        canvas.text("share of row", x: scaleX + 44, y: top + cell * Double(n) / 2, size: 11, anchor: (0.5, 0), rotation: -.pi / 2)
        try canvas.writePNG(to: url)
    }
}

/// Horizontal bars, one per label (per-class accuracy).
public struct BarChart: Sendable {
    public var title: String
    public var valueLabel: String
    public var labels: [String]
    public var values: [Double]
    /// The value axis's upper end (1 for accuracies).
    public var maximum: Double

    public init(title: String, valueLabel: String, labels: [String], values: [Double], maximum: Double = 1) {
        self.title = title
        self.valueLabel = valueLabel
        self.labels = labels
        self.values = values
        self.maximum = maximum
    }

    public func write(to url: URL, width: Int = 800) throws {
        guard labels.count == values.count, !labels.isEmpty else { throw PlotError("\(url.path): a bar chart needs one value per label") }
        let bar = 22.0
        let probe = try Canvas(width: 10, height: 10)
        let labelWidth = (labels.map { probe.textWidth($0, size: 12) }.max() ?? 0) + 16
        let height = Int(70 + bar * Double(labels.count) + 60)
        let canvas = try Canvas(width: width, height: height)
        canvas.text(title, x: Double(width) / 2, y: 16, size: 16, anchor: (0.5, 0), bold: true)
        let frame = (left: labelWidth + 10, right: Double(width) - 60, top: 55.0, bottom: 55 + bar * Double(labels.count))
        let axes = Axes(frame: frame, x: 0...maximum, y: 0...Double(labels.count))
        axes.drawXAxis(on: canvas, label: valueLabel, percent: maximum == 1)
        for (index, (label, value)) in zip(labels, values).enumerated() {
            let y = frame.top + Double(index) * bar
            let end = axes.position(min(max(value, 0), maximum), 0).0
            canvas.fill(Color.series[0], x: frame.left, y: y + 3, width: end - frame.left, height: bar - 6)
            canvas.text(label, x: frame.left - 6, y: y + bar / 2, size: 12, anchor: (1, 0.5))
            canvas.text(maximum == 1 ? String(format: "%.1f%%", value * 100) : String(format: "%.3g", value),
                        x: end + 4, y: y + bar / 2, size: 11, anchor: (0, 0.5))
        }
        try canvas.writePNG(to: url)
    }
}

/// Points of one value against another, as a search's objective against a hyperparameter. The
/// x axis is linear, logarithmic (learning rates) or a list of categories (optimizers); one
/// point can be marked (the best trial).
public struct ScatterChart: Sendable {
    public enum XAxis: Sendable, Equatable {
        case linear
        /// Positive x values on a base-10 logarithmic axis.
        case logarithmic
        /// x values are indices into these names.
        case categories([String])
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var points: [(x: Double, y: Double)]
    public var xAxis: XAxis
    /// The index in ``points`` of the point drawn larger and in another colour.
    public var marked: Int?

    public init(title: String, xLabel: String, yLabel: String, points: [(x: Double, y: Double)], xAxis: XAxis = .linear, marked: Int? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.points = points
        self.xAxis = xAxis
        self.marked = marked
    }

    /// Draws the chart into a PNG file; points whose coordinates are not finite (or not positive
    /// on a logarithmic axis) are left out.
    public func write(to url: URL, width: Int = 640, height: Int = 420) throws {
        let canvas = try Canvas(width: width, height: height)
        let frame = (left: 80.0, right: canvas.width - 30, top: 50.0, bottom: canvas.height - 70)
        canvas.text(title, x: canvas.width / 2, y: 18, size: 16, anchor: (0.5, 0), bold: true)
        func plotted(_ x: Double) -> Double? {
            if case .logarithmic = xAxis { return x > 0 ? log10(x) : nil }
            return x.isFinite ? x : nil
        }
        let shown = points.enumerated().compactMap { entry -> (index: Int, x: Double, y: Double)? in
            guard let x = plotted(entry.element.x), entry.element.y.isFinite else { return nil }
            return (entry.offset, x, entry.element.y)
        }
        var xRange: ClosedRange<Double>
        var xTicks: [(Double, String)]
        switch xAxis {
        case let .categories(names):
            xRange = -0.5...(Double(max(names.count, 1)) - 0.5)
            xTicks = names.enumerated().map { (Double($0.offset), $0.element) }
        case .linear, .logarithmic:
            let xs = shown.map(\.x)
            let low = xs.min() ?? 0, high = max(xs.max() ?? 1, low + 1e-9)
            let margin = (high - low) * 0.06 + (high == low ? 0.5 : 0)
            xRange = (low - margin)...(high + margin)
            if case .logarithmic = xAxis {
                let decades = Int(floor(xRange.lowerBound))...Int(ceil(xRange.upperBound))
                xTicks = decades.map { (Double($0), "1e\($0)") }.filter { xRange.contains($0.0) }
                if xTicks.count < 2 { xTicks = Axes.ticks(xRange).map { ($0, String(format: "%.3g", pow(10, $0))) } }
            } else {
                xTicks = Axes.ticks(xRange).map { ($0, String(format: "%.3g", $0)) }
            }
        }
        let ys = shown.map(\.y)
        let yLow = ys.min() ?? 0, yHigh = max(ys.max() ?? 1, yLow + 1e-6)
        let yMargin = (yHigh - yLow) * 0.08
        let axes = Axes(frame: frame, x: xRange, y: (yLow - yMargin)...(yHigh + yMargin))
        axes.draw(on: canvas, xLabel: xLabel, yLabel: yLabel, integerX: false, xTicks: xTicks)
        for point in shown {
            let (px, py) = axes.position(point.x, point.y)
            let isMarked = point.index == marked
            canvas.circle(px, py, radius: isMarked ? 6 : 4, color: isMarked ? Color.series[3] : Color.series[0])
        }
        try canvas.writePNG(to: url)
    }
}

/// Maps data to pixels inside a frame and draws ticks, grid and labels.
struct Axes {
    let frame: (left: Double, right: Double, top: Double, bottom: Double)
    let x: ClosedRange<Double>
    let y: ClosedRange<Double>

    func position(_ xValue: Double, _ yValue: Double) -> (Double, Double) {
        let fx = (xValue - x.lowerBound) / (x.upperBound - x.lowerBound)
        let fy = (yValue - y.lowerBound) / (y.upperBound - y.lowerBound)
        return (frame.left + fx * (frame.right - frame.left), frame.bottom - fy * (frame.bottom - frame.top))
    }

    /// About five round tick values covering `range`.
    static func ticks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0 else { return [range.lowerBound] }
        let raw = span / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var value = ceil(range.lowerBound / step) * step
        var result: [Double] = []
        while value <= range.upperBound + step * 1e-9 {
            result.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return result
    }

    /// Draws the frame, the y ticks and grid, and x ticks: `xTicks` (positions and labels) when
    /// given, else round values (whole ones with `integerX`).
    func draw(on canvas: Canvas, xLabel: String, yLabel: String, integerX: Bool, xTicks: [(Double, String)]? = nil) {
        let grid = Color(0.88, 0.88, 0.88), ink = Color(0.3, 0.3, 0.3)
        for tick in Self.ticks(y) {
            let (_, py) = position(x.lowerBound, tick)
            canvas.line([(frame.left, py), (frame.right, py)], color: grid, width: 1)
            canvas.text(String(format: abs(tick) < 10 ? "%.3g" : "%.0f", tick), x: frame.left - 6, y: py, size: 11, anchor: (1, 0.5))
        }
        let labelled = xTicks ?? Self.ticks(x).filter { !integerX || $0 == $0.rounded() }.map { ($0, String(format: "%.0f", $0)) }
        for (tick, label) in labelled {
            let (px, _) = position(tick, y.lowerBound)
            canvas.line([(px, frame.bottom), (px, frame.bottom + 4)], color: ink, width: 1)
            canvas.text(label, x: px, y: frame.bottom + 8, size: 11, anchor: (0.5, 0))
        }
        canvas.strokeRectangle(ink, x: frame.left, y: frame.top, width: frame.right - frame.left, height: frame.bottom - frame.top)
        canvas.text(xLabel, x: (frame.left + frame.right) / 2, y: frame.bottom + 30, size: 13, anchor: (0.5, 0))
        canvas.text(yLabel, x: 20, y: (frame.top + frame.bottom) / 2, size: 13, anchor: (0.5, 0.5), rotation: -.pi / 2)
    }

    func drawXAxis(on canvas: Canvas, label: String, percent: Bool) {
        let grid = Color(0.88, 0.88, 0.88), ink = Color(0.3, 0.3, 0.3)
        for tick in Self.ticks(x) {
            let (px, _) = position(tick, 0)
            canvas.line([(px, frame.top), (px, frame.bottom)], color: grid, width: 1)
            canvas.text(percent ? String(format: "%.0f%%", tick * 100) : String(format: "%.3g", tick), x: px, y: frame.bottom + 6,
                        size: 11, anchor: (0.5, 0))
        }
        canvas.line([(frame.left, frame.bottom), (frame.right, frame.bottom)], color: ink, width: 1)
        canvas.text(label, x: (frame.left + frame.right) / 2, y: frame.bottom + 28, size: 13, anchor: (0.5, 0))
    }
}

/// Images in rows, each row with a label on its left (a preview of augmented samples per class).
public struct ImageGrid: Sendable {
    /// An 8-bit RGB image, channels-last.
    public struct Picture: Sendable {
        public var width: Int
        public var height: Int
        public var pixels: [UInt8]

        public init(width: Int, height: Int, pixels: [UInt8]) {
            self.width = width
            self.height = height
            self.pixels = pixels
        }
    }

    public var title: String
    public var rows: [(label: String, pictures: [Picture])]
    /// Pixels per image pixel (small images are enlarged for people to see them).
    public var scale: Int

    public init(title: String, rows: [(label: String, pictures: [Picture])], scale: Int = 1) {
        self.title = title
        self.rows = rows
        self.scale = max(1, scale)
    }

    public func write(to url: URL) throws {
        let pictures = rows.flatMap(\.pictures)
        guard let first = pictures.first else { throw PlotError("\(url.path): nothing to show") }
        let cellWidth = Double(first.width * scale), cellHeight = Double(first.height * scale), gap = 4.0
        let probe = try Canvas(width: 10, height: 10)
        let labelWidth = (rows.map { probe.textWidth($0.label, size: 13) }.max() ?? 0) + 16
        let columns = rows.map(\.pictures.count).max() ?? 0
        let width = Int(max(labelWidth + Double(columns) * (cellWidth + gap) + gap, probe.textWidth(title, size: 15) + 24))
        let height = Int(44 + Double(rows.count) * (cellHeight + gap) + gap)
        let canvas = try Canvas(width: width, height: height)
        canvas.text(title, x: Double(width) / 2, y: 12, size: 15, anchor: (0.5, 0), bold: true)
        for (rowIndex, row) in rows.enumerated() {
            let y = 40 + Double(rowIndex) * (cellHeight + gap)
            canvas.text(row.label, x: labelWidth - 8, y: y + cellHeight / 2, size: 13, anchor: (1, 0.5))
            for (column, picture) in row.pictures.enumerated() {
                try canvas.draw(picture, x: labelWidth + Double(column) * (cellWidth + gap), y: y, scale: Double(scale))
            }
        }
        try canvas.writePNG(to: url)
    }
}
