return Gpt2Engine.Cli.CliApp.Run(args);
