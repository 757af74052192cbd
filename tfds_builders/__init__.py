"""TFDS dataset builders of hmvae-tf."""
