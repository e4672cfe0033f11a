"""Writing files so that a kill or a full disk never leaves half of one (:mod:`.atomic`), and the fault battery's
parking points inside those writes (:mod:`.faultpoint`). Imports nothing of ours but the errors: data, the engine,
the report and the runner all write through it."""
