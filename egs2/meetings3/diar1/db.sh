# Where the corpora are (or are downloaded to by local/data.sh). Environment variables win.
# AMI: amicorpus/<meeting>/audio/<meeting>.Array1-01.wav and AMI-diarization-setup/ go here.
AMI=${AMI:-downloads/ami}
# AISHELL4: the directory holding train_L/, train_M/, train_S/ and test/ (OpenSLR 111).
AISHELL4=${AISHELL4:-downloads/aishell4}
# ALIMEETING: the directory holding Train_Ali_far/, Eval_Ali/ and Test_Ali/ (OpenSLR 119).
ALIMEETING=${ALIMEETING:-downloads/alimeeting}
