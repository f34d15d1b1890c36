/// Augmentation written as text, as the command line takes it: comma-separated steps applied in
/// order after resizing, each with Keras preprocessing layers' meaning of its number:
///
/// `flip` (horizontal), `vflip`, `rotation=F` (fraction of a full turn, ±F), `zoom=F` (±F,
/// positive zooms out), `translate=F` (±F of the size), `padcrop=P` (pad P pixels with zeros,
/// crop back at random: the CIFAR recipe), `contrast=F`, `brightness=F` (±F of the value range),
/// `shift=R` (add ±R to each channel). `none` is no augmentation.
public struct AugmentationSpecification: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public let transforms: [any ImageTransform]

    public init(parsing text: String) throws {
        self.text = text
        var transforms: [any ImageTransform] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where part != "none" && !part.isEmpty {
            let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
            let number = pieces.count > 1 ? Float(pieces[1]) : nil
            func value(_ name: String, in range: ClosedRange<Float>) throws -> Float {
                guard let number, range.contains(number) else {
                    throw DataError("augmentation '\(part)'", "\(name) needs a number in \(range.lowerBound)...\(range.upperBound), as in \(name)=0.1")
                }
                return number
            }
            switch pieces[0] {
            case "flip" where pieces.count == 1: transforms.append(RandomFlip(horizontal: true))
            case "vflip" where pieces.count == 1: transforms.append(RandomFlip(horizontal: false, vertical: true))
            case "rotation": transforms.append(RandomRotation(factor: FactorRange(try value("rotation", in: 0...1))))
            case "zoom": transforms.append(RandomZoom(heightFactor: FactorRange(try value("zoom", in: 0...0.9))))
            case "translate":
                let amount = FactorRange(try value("translate", in: 0...1))
                transforms.append(RandomTranslation(heightFactor: amount, widthFactor: amount))
            case "padcrop": transforms.append(RandomPaddedCrop(padding: Int(try value("padcrop", in: 1...64))))
            case "contrast": transforms.append(RandomContrast(factor: try value("contrast", in: 0...1)))
            case "brightness": transforms.append(RandomBrightness(factor: FactorRange(try value("brightness", in: 0...1))))
            case "shift": transforms.append(RandomChannelShift(range: try value("shift", in: 0...255)))
            default:
                throw DataError("augmentation '\(part)'",
                                "not one of flip, vflip, rotation=F, zoom=F, translate=F, padcrop=P, contrast=F, brightness=F, shift=R, none")
            }
        }
        self.transforms = transforms
    }

    public var description: String { text }

    public static func == (lhs: AugmentationSpecification, rhs: AugmentationSpecification) -> Bool { lhs.text == rhs.text }

    /// What the loader applies to each training sample: resize to `size`, then these steps.
    public func sampleTransform(size: Int, resize: ResizeMethod) -> DataLoader.SampleTransform {
        let pipeline = TransformPipeline([Resize(size: size, method: resize)] + transforms)
        return { image, generator in pipeline.apply(image, generator: &generator) }
    }

    /// What the loader applies to evaluation samples: resizing only.
    public static func evaluationTransform(size: Int, resize: ResizeMethod) -> DataLoader.SampleTransform {
        let resizing = Resize(size: size, method: resize)
        return { image, generator in resizing.apply(image, generator: &generator) }
    }
}
