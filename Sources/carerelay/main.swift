import ZeroMQ
print("carerelay (CareRelay 0.1.0) on libzmq \(ZMQLibrary.versionString)")
