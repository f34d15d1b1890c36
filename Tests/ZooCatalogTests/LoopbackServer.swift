import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 file server on 127.0.0.1 for download tests. It serves one body, honours
/// `Range: bytes=N-` unless told not to, and can cut its first response short to imitate a
/// dropped connection. It stops after `maximumRequests` requests or when stopped.
final class LoopbackServer: @unchecked Sendable {
    let body: [UInt8]
    let port: UInt16
    private let socketDescriptor: Int32
    private let lock = NSLock()
    private var cutFirstResponseAt: Int?
    private var honourRange: Bool
    private(set) var requests: [String] = []

    init(body: [UInt8], cutFirstResponseAt: Int? = nil, honourRange: Bool = true, maximumRequests: Int = 16) throws {
        self.body = body
        self.cutFirstResponseAt = cutFirstResponseAt
        self.honourRange = honourRange
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        socketDescriptor = descriptor
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in
            for _ in 0..<maximumRequests {
                let client = accept(socketDescriptor, nil, nil)
                if client < 0 { return }
                handle(client)
            }
        }
        thread.start()
    }

    var url: String { "http://127.0.0.1:\(port)/weights.bin" }

    func stop() {
        shutdown(socketDescriptor, Int32(SHUT_RDWR))
        close(socketDescriptor)
    }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(client, &buffer, buffer.count)
        guard count > 0 else { return }
        let request = String(decoding: buffer[0..<count], as: UTF8.self)
        lock.lock()
        requests.append(request)
        let cut = cutFirstResponseAt
        cutFirstResponseAt = nil
        let ranged = honourRange
        lock.unlock()
        var start = 0
        if ranged, let line = request.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("range: bytes=") }) {
            start = Int(line.dropFirst("range: bytes=".count).split(separator: "-").first ?? "") ?? 0
        }
        let status = start > 0 ? "206 Partial Content" : "200 OK"
        var header = "HTTP/1.1 \(status)\r\nContent-Length: \(body.count - start)\r\nConnection: close\r\n"
        if start > 0 { header += "Content-Range: bytes \(start)-\(body.count - 1)/\(body.count)\r\n" }
        header += "\r\n"
        send(client, Array(header.utf8))
        let end = cut.map { min(start + $0, body.count) } ?? body.count
        send(client, Array(body[start..<end]))
    }

    private func send(_ client: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            if sent <= 0 { return }
            offset += sent
        }
    }
}
