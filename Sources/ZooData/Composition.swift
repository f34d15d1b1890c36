/// A dataset seen through a list of sample indices and a relabelling: class subsets, per-class
/// limits and train/validation splits are all subsets.
import ZooTensor

public struct Subset: Dataset {
    public let base: any Dataset
    /// Indices into `base`, in order.
    public let indices: [Int]
    public let classNames: [String]
    /// The base's label to this subset's label.
    private let relabel: [Int: Int]

    init(base: any Dataset, indices: [Int], classNames: [String], relabel: [Int: Int]) {
        self.base = base
        self.indices = indices
        self.classNames = classNames
        self.relabel = relabel
    }

    public var count: Int { indices.count }
    public func label(at index: Int) -> Int { relabel[base.label(at: indices[index])]! }
    public func sampleID(at index: Int) -> String { base.sampleID(at: indices[index]) }
    public func image(at index: Int) throws -> Image { try base.image(at: indices[index]) }
}

/// Several datasets as one, with a merged label space: the first dataset's classes keep their
/// labels, and each later dataset's classes not seen before are numbered after them (CIFAR-10
/// plus the five CIFAR-100 reptiles gives 15 classes, the reptiles 10 to 14). Classes with the
/// same name are the same class.
public struct Union: Dataset {
    public let parts: [any Dataset]
    public let classNames: [String]
    /// Each part's labels in the merged space.
    private let labelMaps: [[Int]]
    /// Where each part's samples start.
    private let offsets: [Int]

    public init(_ parts: [any Dataset]) {
        self.parts = parts
        var names: [String] = []
        var maps: [[Int]] = []
        var offsets: [Int] = []
        var total = 0
        for part in parts {
            maps.append(part.classNames.map { name in
                if let existing = names.firstIndex(of: name) { return existing }
                names.append(name)
                return names.count - 1
            })
            offsets.append(total)
            total += part.count
        }
        classNames = names
        labelMaps = maps
        self.offsets = offsets
    }

    public var count: Int { (offsets.last ?? 0) + (parts.last?.count ?? 0) }

    private func locate(_ index: Int) -> (part: Int, index: Int) {
        var part = offsets.count - 1
        while offsets[part] > index { part -= 1 }
        return (part, index - offsets[part])
    }

    public func label(at index: Int) -> Int {
        let (part, local) = locate(index)
        return labelMaps[part][parts[part].label(at: local)]
    }

    public func sampleID(at index: Int) -> String {
        let (part, local) = locate(index)
        return parts[part].sampleID(at: local)
    }

    public func image(at index: Int) throws -> Image {
        let (part, local) = locate(index)
        return try parts[part].image(at: local)
    }
}

extension Dataset {
    /// Only the named classes, relabelled `0..<names.count` in the order given.
    public func classes(_ names: [String]) throws -> Subset {
        var relabel: [Int: Int] = [:]
        for (newLabel, name) in names.enumerated() {
            guard let old = classNames.firstIndex(of: name) else {
                throw DataError("class \(name)", "not among the dataset's classes: \(classNames.joined(separator: ", "))")
            }
            guard relabel[old] == nil else { throw DataError("class \(name)", "named twice") }
            relabel[old] = newLabel
        }
        return Subset(base: self, indices: (0..<count).filter { relabel[label(at: $0)] != nil }, classNames: names, relabel: relabel)
    }

    /// The first `count` classes (as in experiments on 20, 40, 60 and 80 CIFAR-100 classes).
    public func firstClasses(_ count: Int) throws -> Subset {
        guard count > 0, count <= classNames.count else {
            throw DataError("first \(count) classes", "the dataset has \(classNames.count) classes")
        }
        return try classes(Array(classNames.prefix(count)))
    }

    /// The first `count` samples (all of them when there are fewer).
    public func prefix(_ count: Int) -> Subset {
        Subset(base: self, indices: Array(0..<min(count, self.count)), classNames: classNames, relabel: identityLabels)
    }

    /// The samples after the first `count`, in order.
    public func dropFirst(_ count: Int) -> Subset {
        Subset(base: self, indices: Array(min(count, self.count)..<self.count), classNames: classNames, relabel: identityLabels)
    }

    /// At most `limit` samples of each class: the first ones in dataset order.
    public func limitPerClass(_ limit: Int) -> Subset {
        var taken = [Int](repeating: 0, count: classNames.count)
        let indices = (0..<count).filter { index in
            let label = label(at: index)
            guard taken[label] < limit else { return false }
            taken[label] += 1
            return true
        }
        return Subset(base: self, indices: indices, classNames: classNames, relabel: identityLabels)
    }

    /// A seeded, stratified split: `validationFraction` of each class (rounded) goes to
    /// validation, the rest to training, both in dataset order.
    public func split(validationFraction: Double = 0.2, seed: UInt64) throws -> (training: Subset, validation: Subset) {
        guard validationFraction >= 0, validationFraction < 1 else {
            throw DataError("validation split", "the fraction must be in [0, 1), got \(validationFraction)")
        }
        var byClass = [[Int]](repeating: [], count: classNames.count)
        for index in 0..<count { byClass[label(at: index)].append(index) }
        var generator = SeededGenerator(seed: seed)
        var validation = Set<Int>()
        for members in byClass {
            let chosen = members.shuffled(using: &generator).prefix(Int((Double(members.count) * validationFraction).rounded()))
            validation.formUnion(chosen)
        }
        let training = (0..<count).filter { !validation.contains($0) }
        return (Subset(base: self, indices: training, classNames: classNames, relabel: identityLabels),
                Subset(base: self, indices: validation.sorted(), classNames: classNames, relabel: identityLabels))
    }

    private var identityLabels: [Int: Int] {
        Dictionary(uniqueKeysWithValues: classNames.indices.map { ($0, $0) })
    }
}

/// Images held in memory, with their labels: for data a program makes or has already decoded.
public struct ArrayDataset: Dataset {
    public let classNames: [String]
    public let images: [Image]
    public let labels: [Int]

    public init(images: [Image], labels: [Int], classNames: [String]) throws {
        guard images.count == labels.count else {
            throw DataError("in-memory dataset", "\(images.count) images but \(labels.count) labels")
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classNames.count }) {
            throw DataError("in-memory dataset", "label \(bad) is outside the \(classNames.count) classes")
        }
        self.images = images
        self.labels = labels
        self.classNames = classNames
    }

    public var count: Int { images.count }
    public func label(at index: Int) -> Int { labels[index] }
    public func sampleID(at index: Int) -> String { "memory#\(index)" }
    public func image(at index: Int) throws -> Image { images[index] }
}
