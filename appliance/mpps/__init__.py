"""Modality Performed Procedure Step SCP (PS3.4 Annex F): the modality says an exam started
and ended; the worklist item's status follows."""
