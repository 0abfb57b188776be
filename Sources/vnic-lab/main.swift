import VnicCLI
CommandEntry.main(VnicLab.self)
