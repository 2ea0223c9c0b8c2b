import CZeroMQ
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The version of the libzmq this process is linked against.
public enum ZMQLibrary {
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
    public static var versionString: String {
        let v = version
        return "\(v.major).\(v.minor).\(v.patch)"
    }
    /// Whether libzmq was built with CURVE security (libsodium).
    public static var hasCurve: Bool { zmq_has("curve") != 0 }

    /// CareRelay's patch level of the loaded libzmq, or nil for a build without it.
    /// `Scripts/libzmq/build` adds `zmq_carerelay_patch_level()` to Debian's libzmq 4.3.4
    /// together with its fix for the `!_io_error` assertion (stream_engine_base.cpp), through
    /// which a client that resets a connection it has flooded aborted the whole process. The
    /// symbol is looked up at run time, so the same binary runs on either build.
    public static var carerelayPatchLevel: Int? {
        guard let process = dlopen(nil, RTLD_NOW) else { return nil }
        defer { dlclose(process) }
        guard let symbol = dlsym(process, "zmq_carerelay_patch_level") else { return nil }
        typealias PatchLevel = @convention(c) () -> Int32
        return Int(unsafeBitCast(symbol, to: PatchLevel.self)())
    }

    /// What a start-up line should say, e.g. "4.3.4, CareRelay patch 1" or
    /// "4.3.4, without CareRelay's patch".
    public static var buildDescription: String {
        if let level = carerelayPatchLevel { return "\(versionString), CareRelay patch \(level)" }
        return "\(versionString), without CareRelay's patch"
    }
}
