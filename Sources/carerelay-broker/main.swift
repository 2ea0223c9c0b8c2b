import ZeroMQ
print("carerelay-broker (CareRelay 0.1.0) on libzmq \(ZMQLibrary.versionString), CURVE \(ZMQLibrary.hasCurve ? "available" : "MISSING")")
