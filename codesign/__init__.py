"""spikeforge.codesign"""
