@_exported import ZooNN
