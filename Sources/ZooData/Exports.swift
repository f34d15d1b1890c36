@_exported import ZooTensor
