# Where the corpora are (or are downloaded to by local/data.sh). Environment variables win.
# AMI: amicorpus/<meeting>/audio/<meeting>.Array1-01.wav and AMI-diarization-setup/ go here.
AMI=${AMI:-downloads/ami}
