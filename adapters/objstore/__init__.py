"""Object storage adapters: the network calls that put a bundle into a bucket and read it back."""
