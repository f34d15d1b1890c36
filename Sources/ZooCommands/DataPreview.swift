import Foundation
import ZooTensor
import ZooData
import ZooPlots

/// A picture of what training sees: a row per class of augmented samples.
public enum DataPreview {
    /// Writes a PNG with up to `columns` samples of each class (the first ones of each class),
    /// resized to `size` and augmented as training would augment them.
    public static func write(_ dataset: any Dataset, to url: URL, size: Int, augmentation: AugmentationSpecification,
                             resize: ResizeMethod = .keras, columns: Int = 8, seed: UInt64 = 0) throws {
        let transform = augmentation.sampleTransform(size: size, resize: resize)
        var picked = [[Int]](repeating: [], count: dataset.classNames.count)
        for index in 0..<dataset.count where picked[dataset.label(at: index)].count < columns {
            picked[dataset.label(at: index)].append(index)
        }
        let rows = try zip(dataset.classNames, picked).filter { !$0.1.isEmpty }.map { name, indices in
            (label: name, pictures: try indices.map { index -> ImageGrid.Picture in
                var generator = SeededGenerator.forSample(seed: seed, epoch: 0, index: index)
                let image = try transform(dataset.image(at: index).floatImage, &generator)
                return ImageGrid.Picture(width: image.width, height: image.height,
                                         pixels: image.values.map { UInt8(min(max($0.rounded(), 0), 255)) })
            })
        }
        try ImageGrid(title: "\(dataset.count) images, \(dataset.classNames.count) classes; augmentation: \(augmentation)", rows: rows,
                      scale: size < 64 ? 2 : 1).write(to: url)
    }
}
