import VnicCLI
CommandEntry.main(VnicD.self)
