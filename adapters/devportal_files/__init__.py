"""Helper scripts shipped inside every devportal:offline bundle (``serve.sh``, ``verify-portal.sh``)."""
