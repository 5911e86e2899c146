"""spikeforge.hw"""
