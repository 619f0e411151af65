package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Help laid out like docker's: "Usage:  berth ps [OPTIONS]", the description,
// aliases, options, then the command groups, and "Global Options" at the root.
const usageTemplate = `Usage:  {{if not .HasSubCommands}}{{usageLine .}}{{end}}{{if .HasSubCommands}}{{ .CommandPath}}{{if not .HasParent}} [OPTIONS]{{end}} COMMAND{{end}}
{{if ne .Long ""}}
{{ .Long | trim }}{{else if ne .Short ""}}
{{ .Short | trim }}{{end}}
{{- if index .Annotations "aliases"}}

Aliases:
  {{index .Annotations "aliases"}}
{{- else if gt (len .Aliases) 0}}

Aliases:
  {{aliases .}}
{{- end}}
{{- if .HasExample}}

Examples:
{{ .Example }}
{{- end}}
{{- if .HasParent}}{{if .HasAvailableLocalFlags}}

Options:
{{ wrappedFlags . }}
{{- end}}{{end}}
{{- range $g := commandGroups .}}

{{ $g.Title }}
{{- range $g.Commands}}
  {{rpad .Name .NamePadding }} {{.Short}}
{{- end}}
{{- end}}
{{- if not .HasParent}}

Global Options:
{{ globalFlags . }}
{{- end}}
{{- if .HasSubCommands }}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{- end}}
`

type cmdGroup struct {
	Title    string
	Commands []*cobra.Command
}

// annotateAliases records, like docker, that "berth ps" is also "berth
// container ls": both commands list every name in their help.
func annotateAliases(root *cobra.Command) {
	top := map[string]*cobra.Command{}
	for _, c := range root.Commands() {
		top[c.Name()] = c
	}
	shortcut := map[string]string{"container ls": "ps", "image ls": "images", "image rm": "rmi", "image inspect": ""}
	for _, group := range []string{"container", "image"} {
		g := top[group]
		if g == nil {
			continue
		}
		for _, sub := range g.Commands() {
			key := group + " " + sub.Name()
			name, ok := shortcut[key]
			if !ok {
				name = sub.Name()
			}
			t := top[name]
			if name == "" || t == nil || t.GroupID == "management" {
				continue
			}
			names := []string{root.Name() + " " + key}
			for _, a := range sub.Aliases {
				names = append(names, root.Name()+" "+group+" "+a)
			}
			names = append(names, root.Name()+" "+name)
			list := strings.Join(names, ", ")
			for _, c := range []*cobra.Command{sub, t} {
				if c.Annotations == nil {
					c.Annotations = map[string]string{}
				}
				c.Annotations["aliases"] = list
			}
		}
	}
}

func setHelpTemplates(root *cobra.Command) {
	annotateAliases(root)
	cobra.AddTemplateFunc("usageLine", usageLine)
	cobra.AddTemplateFunc("aliases", func(cmd *cobra.Command) string {
		var out []string
		parent := ""
		if cmd.HasParent() {
			parent = cmd.Parent().CommandPath() + " "
		}
		for _, a := range append([]string{cmd.Name()}, cmd.Aliases...) {
			out = append(out, parent+a)
		}
		return strings.Join(out, ", ")
	})
	cobra.AddTemplateFunc("wrappedFlags", func(cmd *cobra.Command) string {
		return strings.TrimRight(cmd.LocalFlags().FlagUsagesWrapped(79), "\n")
	})
	cobra.AddTemplateFunc("globalFlags", func(cmd *cobra.Command) string {
		fs := pflag.NewFlagSet("global", pflag.ContinueOnError)
		fs.AddFlagSet(cmd.LocalFlags())
		return strings.TrimRight(fs.FlagUsagesWrapped(79), "\n")
	})
	cobra.AddTemplateFunc("commandGroups", func(cmd *cobra.Command) []cmdGroup {
		var groups []cmdGroup
		byID := map[string]int{}
		for _, g := range cmd.Groups() {
			byID[g.ID] = len(groups)
			groups = append(groups, cmdGroup{Title: g.Title})
		}
		var rest []*cobra.Command
		for _, sub := range cmd.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" {
				continue
			}
			if i, ok := byID[sub.GroupID]; ok {
				groups[i].Commands = append(groups[i].Commands, sub)
			} else {
				rest = append(rest, sub)
			}
		}
		if len(rest) > 0 {
			sort.Slice(rest, func(i, j int) bool { return rest[i].Name() < rest[j].Name() })
			groups = append(groups, cmdGroup{Title: "Commands:", Commands: rest})
		}
		out := groups[:0]
		for _, g := range groups {
			if len(g.Commands) > 0 {
				out = append(out, g)
			}
		}
		return out
	})
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
}
