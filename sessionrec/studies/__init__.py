"""Studies: experiments that train and compare several models on one protocol (the
cold-start study of :mod:`sessionrec.studies.cold_start`)."""
