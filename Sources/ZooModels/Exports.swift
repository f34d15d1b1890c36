@_exported import ZooNN
@_exported import ZooData
