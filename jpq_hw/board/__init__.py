"""The board top that carries a lowered network onto a board, and the host side that talks to it."""
