// libFuzzer target for zoo's weight-file parsers (built by scripts/fuzz together with the
// ZooWeights sources, so it can call their in-memory entry points).
//
// Every input goes through the pickle machine, the safetensors and .npy parsers, and, when it
// looks like one, the zip-based readers (torch zip, .npz, .keras with .npz weights) and the
// legacy torch reader, reading every tensor. Parsers may throw; anything else (a trap, an
// ASan report, a hang, an allocation over the fuzzer's limit) is a finding. HDF5 input is
// skipped: libhdf5 runs only in the sandbox child process, which the fuzzer cannot follow.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func weightsFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))

    _ = try? Unpickler.parse(bytes: bytes)
    _ = try? SafetensorsFile.parse(bytes: bytes)
    _ = try? NPYFile.parse(bytes: bytes)

    let window = Bytes(copying: bytes)
    if ZipArchive.looksLikeZip(window), let archive = try? ZipArchive(bytes: window) {
        // Pickles hide inside zips (torch's data.pkl): unpickle every entry too.
        for entry in archive.entries.prefix(64) {
            if let contents = try? archive.contents(of: entry) {
                _ = try? Unpickler.parse(bytes: contents.array)
            }
        }
    }
    if !window.starts(with: HDF5Signature.bytes),
        let reader = try? WeightFiles.open(bytes: window, url: URL(fileURLWithPath: "/fuzz/input"))
    {
        for tensor in reader.tensors.prefix(256) {
            _ = try? reader.floats(tensor.name)
        }
    }
    return 0
}
