@_exported import ZooTensor
@_exported import ZooNN
@_exported import ZooWeights
@_exported import ZooTraining
