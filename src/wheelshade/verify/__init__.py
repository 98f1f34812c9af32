"""Run-time checks of shaded wheels in throwaway virtual environments."""
