import Foundation

/// The real images in `../shared/data` (see its README) that the real-data tests unpack into
/// temporary folders; never committed, and the tests skip where an archive is absent.
public enum SharedData {
    /// `$ZOO_SHARED_DATA`, or `shared/data` beside the package root.
    public static let folder: URL = {
        if let path = ProcessInfo.processInfo.environment["ZOO_SHARED_DATA"] { return URL(fileURLWithPath: path) }
        // This file is Tests/ZooTestSupport/SharedData.swift: four levels up is the root's parent.
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/data")
    }()

    /// The archive of that name in ``folder``, or nil where it is absent.
    public static func archive(_ name: String) -> URL? {
        let url = folder.appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// Unpacks a `.tar.gz` archive into `target` (which exists) with the system's tar.
    public static func unpack(_ archive: URL, into target: URL) throws {
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-xzf", archive.path, "-C", target.path]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw UnpackError(archive: archive, status: tar.terminationStatus) }
    }

    /// tar failed on an archive.
    public struct UnpackError: Error, CustomStringConvertible {
        public let archive: URL
        public let status: Int32
        public var description: String { "tar could not unpack \(archive.path) (exit status \(status))" }
    }
}
