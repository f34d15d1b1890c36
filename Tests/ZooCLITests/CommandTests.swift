import Foundation
import Testing

/// Runs the built `zoo` executable, which sits beside the test bundle in the build folder.
struct Zoo {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("zoo")
    }

    /// Runs `zoo arguments` and returns its exit status, standard output and standard error.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

@Suite("zoo command", .serialized)
struct CommandTests {
    @Test("the executable was built beside the tests")
    func executableExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Zoo.executable.path), "build with `swift build --build-tests` first")
    }

    @Test("--version names zoo's and oneDNN's versions")
    func version() throws {
        let result = try Zoo.run(["--version"])
        #expect(result.status == 0)
        #expect(result.output.contains("oneDNN 2."))
    }

    @Test("demo trains and prints one line per epoch")
    func demo() throws {
        let result = try Zoo.run(["demo", "--epochs", "2", "--threads", "1"])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("epoch ") }.count == 2)
        #expect(lines.last?.hasPrefix("done: validation accuracy") == true)
    }

    @Test("bench ops --json gives every case and pass with the contract's keys")
    func benchOperationsJSON() throws {
        let result = try Zoo.run(["bench", "ops", "--json", "--rounds", "1"])
        #expect(result.status == 0, "\(result.error)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
        #expect(rows.count == 9)
        for row in rows {
            #expect(Set(row.keys) == ["case", "pass", "zoo_gflops", "onednn_gflops", "ratio"])
            #expect(["forward", "backward_data", "backward_weights"].contains(row["pass"] as? String ?? ""))
            let zoo = row["zoo_gflops"] as? Double ?? 0, bare = row["onednn_gflops"] as? Double ?? 0
            #expect(zoo > 0 && bare > 0)
            #expect(abs((row["ratio"] as? Double ?? 0) - zoo / bare) < 1e-9)
        }
    }

    @Test("bad arguments are reported, not crashed on")
    func badArguments() throws {
        let result = try Zoo.run(["demo", "--threads", "0"])
        #expect(result.status != 0)
        #expect(result.error.contains("--threads must be at least 1"))
    }
}
