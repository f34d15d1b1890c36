import Testing
import ZooModels

@Test func resnetCounts() throws {
    let keras = ResNet(.resnet50, flavor: .keras)
    print("keras top", keras.parameterCount, "layers", keras.baseLayers.count)
    let torch = ResNet(.resnet50, flavor: .torchvision)
    print("torch top", torch.parameterCount, torch.trainableParameters.reduce(0) { $0 + $1.value.elementCount })
    let base = ResNet(.resnet50, flavor: .keras, top: .features(pooling: nil))
    base.head = ClassificationHead([.init(.globalPool(.average), name: "gap"), .init(.dropout(0.5), name: "drop"), .init(.dense(units: 100, activation: nil), name: "dense")], inputFeatures: 2048)
    print("keras head100", base.parameterCount)
    print(keras.namedParameters().prefix(8).map(\.name))
    let x = Tensor.zeros([2, 3, 64, 64])
    let y = try keras(x, .inference())
    print(y.shape)
}
