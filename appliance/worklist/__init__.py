"""Modality Worklist: scheduled procedure steps in the shared database, the MWL C-FIND SCP that
answers modalities from it, the feeders that fill it (HL7 v2 over MLLP, JSON/CSV import, an
upstream MWL proxy) and the lifecycle that completes or expires its items."""
