"""NoteSequence <-> token tensors: melody, drums and trio representations, windowing, augmentation.

Plain data code shared by the TFDS builder, the serving client and the CLI; it never imports
the model.
"""
