import VnicCLI
CommandEntry.main(GuestCommand.self)
