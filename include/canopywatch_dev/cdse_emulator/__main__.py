"""``python -m canopywatch_dev.cdse_emulator --world WORLD.json --port 18500``."""

from canopywatch_dev.cdse_emulator.app import main

if __name__ == "__main__":
    main()
