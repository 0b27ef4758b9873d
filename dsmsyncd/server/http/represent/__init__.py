"""Resources as the wire shows them: envelopes and links."""
