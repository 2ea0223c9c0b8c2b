// CareRelayProtocol: see README for what this module holds.
