"""spikeforge.sw"""
