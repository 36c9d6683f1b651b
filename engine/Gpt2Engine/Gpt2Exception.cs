namespace Gpt2Engine;

/// <summary>
/// An error caused by the user's input (a bad checkpoint, flag, file or prompt). Its message is one line that
/// names the file or value and the problem; the CLI prints it as is, without a stack trace.
/// </summary>
public class Gpt2Exception(string message, Exception? inner = null) : Exception(message, inner);
