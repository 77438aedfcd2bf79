# Where the corpora are (or are downloaded to by local/data.sh). Environment variables win.
# ALIMEETING: the directory holding Train_Ali_far/, Eval_Ali/ and Test_Ali/ (OpenSLR 119).
ALIMEETING=${ALIMEETING:-downloads/alimeeting}
