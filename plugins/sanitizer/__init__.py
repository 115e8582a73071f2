"""Secret masking for the gateway: detectors, the encrypted vault of originals, restoring answers."""
