"""The tool-calling TRM: features, model heads, decoding, training and BFCL evaluation."""
