"""Virtual prepaid electricity meters: what a household's meter does with a purchase."""
