import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where downloaded weights live: `$ZOO_HOME`, or `$XDG_CACHE_HOME/zoo`, or `~/.cache/zoo`
/// (`weights/`), with the built-in files zoo writes out for use (`catalog/`).
public struct WeightCache: Sendable {
    public let root: URL

    public init(root: URL? = nil) {
        if let root {
            self.root = root
            return
        }
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["ZOO_HOME"], !home.isEmpty {
            self.root = URL(fileURLWithPath: home)
        } else if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty {
            self.root = URL(fileURLWithPath: cache).appendingPathComponent("zoo")
        } else {
            self.root = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/zoo")
        }
    }

    /// Where the weight set's file is (or will be) kept.
    public func file(for set: WeightSet) -> URL {
        root.appendingPathComponent("weights").appendingPathComponent(set.file)
    }
}

/// Downloads weight sets into a ``WeightCache``, resumably, and verifies them.
///
/// Bytes go to `<file>.part` as they arrive; a later pull after an interruption asks the server
/// for the rest (`Range`) and starts over only if the server cannot resume. The finished file is
/// verified against the manifest's checksum before it is renamed into place, so the cache never
/// holds a damaged file under the published name.
public enum WeightDownload {
    /// Progress: bytes on disk so far and the total when the server says it.
    public typealias Progress = @Sendable (_ received: Int64, _ total: Int64?) -> Void

    /// The verified local file of `set`, downloading what is missing.
    @discardableResult
    public static func pull(_ set: WeightSet, cache: WeightCache = WeightCache(), timeout: TimeInterval = 60,
                            progress: Progress? = nil) throws -> URL {
        if set.bundled != nil { return try Catalog.bundledFile(set, cache: cache) }
        let destination = cache.file(for: set)
        let manager = FileManager.default
        if manager.fileExists(atPath: destination.path) {
            try set.verify(destination)
            return destination
        }
        guard let url = set.url.flatMap(URL.init(string:)), ["http", "https"].contains(url.scheme?.lowercased() ?? "") else {
            throw CatalogError.notHTTP(weightSet: set.name, url: set.url)
        }
        do {
            try manager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw CatalogError.unwritable(path: destination.deletingLastPathComponent().path, reason: "\(error.localizedDescription)")
        }
        let partial = destination.appendingPathExtension("part")
        try Transfer(url: url, file: partial, timeout: timeout, progress: progress).run()
        do {
            try set.verify(partial)
        } catch {
            // A damaged download cannot be resumed into a good one.
            try? manager.removeItem(at: partial)
            throw error
        }
        // rename(2) replaces a file already there in one step: the name never points at nothing.
        guard rename(partial.path, destination.path) == 0 else {
            throw CatalogError.unwritable(path: destination.path, reason: String(cString: strerror(errno)))
        }
        return destination
    }

    /// One HTTP transfer into a partial file, appending from its current length.
    private final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let url: URL, file: URL, timeout: TimeInterval
        let progress: Progress?
        private let done = DispatchSemaphore(value: 0)
        private var handle: FileHandle?
        private var received: Int64 = 0
        private var total: Int64?
        private var failure: Error?

        init(url: URL, file: URL, timeout: TimeInterval, progress: Progress?) {
            self.url = url
            self.file = file
            self.timeout = timeout
            self.progress = progress
        }

        func run() throws {
            let manager = FileManager.default
            if !manager.fileExists(atPath: file.path) { _ = manager.createFile(atPath: file.path, contents: nil) }
            received = Int64((try? manager.attributesOfItem(atPath: file.path)[.size] as? NSNumber)??.int64Value ?? 0)
            var request = URLRequest(url: url, timeoutInterval: timeout)
            if received > 0 { request.setValue("bytes=\(received)-", forHTTPHeaderField: "Range") }
            let configuration = URLSessionConfiguration.ephemeral
            configuration.timeoutIntervalForRequest = timeout
            let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
            session.dataTask(with: request).resume()
            done.wait()
            session.finishTasksAndInvalidate()
            try? handle?.synchronize()
            try? handle?.close()
            if let failure { throw failure }
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            guard let http = response as? HTTPURLResponse else {
                fail(CatalogError.download(url: url.absoluteString, reason: "not an HTTP response"))
                return completionHandler(.cancel)
            }
            do {
                switch http.statusCode {
                case 206:
                    handle = try FileHandle(forWritingTo: file)
                    try handle?.seekToEnd()
                case 200:
                    // The server sends the whole file (no resume): start the partial file over.
                    try Data().write(to: file)
                    received = 0
                    handle = try FileHandle(forWritingTo: file)
                case 416 where received > 0:
                    // Everything was already received; verification decides.
                    return completionHandler(.cancel)
                default:
                    throw CatalogError.download(url: url.absoluteString, reason: "the server answered HTTP \(http.statusCode)")
                }
                let length = http.expectedContentLength
                total = length >= 0 ? received + length : nil
                completionHandler(.allow)
            } catch {
                fail(error)
                completionHandler(.cancel)
            }
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard failure == nil, let handle else { return }
            do {
                try handle.write(contentsOf: data)
                received += Int64(data.count)
                progress?(received, total)
            } catch {
                fail(CatalogError.unwritable(path: file.path, reason: "\(error.localizedDescription)"))
                dataTask.cancel()
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if let error, failure == nil, !(handle == nil && received > 0 && (error as NSError).code == NSURLErrorCancelled) {
                failure = CatalogError.download(url: url.absoluteString, reason: "download interrupted after \(received) bytes (\(error.localizedDescription)); run the pull again to resume")
            }
            if failure == nil, let total, received < total {
                failure = CatalogError.download(url: url.absoluteString, reason: "the connection closed after \(received) of \(total) bytes; run the pull again to resume")
            }
            done.signal()
        }

        private func fail(_ error: Error) {
            if failure == nil { failure = error }
        }
    }
}
