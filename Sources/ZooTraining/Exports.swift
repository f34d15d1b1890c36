@_exported import ZooNN
@_exported import ZooData
@_exported import ZooModels
