import Foundation
import ZooNN
import ZooWeights

/// Writes a model's parameters (running statistics included) to a safetensors file under
/// their parameter names, which are torchvision's state-dict keys: the file loads back into zoo
/// and into PyTorch (`model.load_state_dict(safetensors.torch.load_file(path), strict=False)`,
/// torchvision's `num_batches_tracked` being the only keys it lacks).
public enum WeightExport {
    public static func safetensors(_ model: Module, to url: URL, metadata: [String: String] = [:]) throws {
        let tensors = try model.namedParameters().map { name, parameter in
            (name: name, shape: parameter.shape, values: try parameter.value.array())
        }
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)
    }
}
