import VnicCLI
CommandEntry.main(Pktgen.self)
