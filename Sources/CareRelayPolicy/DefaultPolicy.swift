extension ConsentPolicy {
    /// The default policy text, identical to `Protocols/consent-policy.default.yaml` (a test
    /// checks), so that the broker runs without a policy file.
    public static let defaultYAML: String = #"""
        # CareRelay consent policy: the defaults. Documented in Protocols/consent-policy.md.
        # The broker embeds this exact text and uses it when no policy file is given.
        version: 1

        # Categories that need the patient's explicit consent outside the originating team.
        sensitive-categories:
          - mental-health
          - sexual-health
          - safeguarding

        # Ordered: for each part of a message, the first rule that applies and decides, decides.
        # Deny rules come before permit rules (deny beats permit); the last rule withholds.
        rules:
          - id: R0-patient-self
            kind: patient-self
          - id: R1-objection
            kind: objection
          - id: R2-explicit-deny
            kind: explicit-deny
          - id: R3-mdt-permission
            kind: mdt-permission
            mdt-purpose: mdt-discussion
          - id: R4-sensitive-explicit
            kind: sensitive-needs-explicit
            explicit-bases: [explicit, best-interests, legal-duty]
          - id: R5-explicit-consent
            kind: explicit-permit
            explicit-bases: [explicit, best-interests, legal-duty]
          - id: R6-implied-consent
            kind: implied-consent
            roles: registered-professionals
            relationships: [care-team, referral-team]
            purposes: [direct-care, mdt-discussion, care-coordination]
          - id: R7-explicit-only
            kind: withhold
            roles: [carer, voluntary-sector-broker, gateway]
            reason: "withheld: carers, family and voluntary sector receive patient information only with the patient's explicit consent, and none is recorded for this recipient"
          - id: R8-no-consent
            kind: withhold

        # Emergency override: delivers, flags the decision as an override; the broker tells the
        # patient's care co-ordinator and audits it.
        break-glass:
          enabled: true
          id: R9-break-glass
          refused-id: R10-break-glass-refused
          requester-roles: registered-professionals
          recipient-roles: registered-professionals
          reason-min-length: 10

        # A referral sent with the patient's agreement (patientAgreed: true) by someone who may record
        # consent records, with it, an explicit consent for the team (or person) it is addressed to:
        # for this purpose, for this many days. A voluntary sector or carers' centre referral then
        # reaches its team.
        patient-agreement:
          enabled: true
          days: 365
          purpose: direct-care

        """#
}
