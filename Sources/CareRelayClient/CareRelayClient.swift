// CareRelayClient: see README for what this module holds.
